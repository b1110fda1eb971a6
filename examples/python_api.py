"""dopr_lite from Python: the README's example, run by a test as it is."""
import dopr_lite as dl

dl.set_seed(0)
cfg = dl.DoprConfig.tiny(max_rollouts=48, n_test=100, out_dir="runs/api")
policy = dl.load_policy(cfg)  # the embedded tiny model, with LoRA adapters
data = dl.load_prompts(cfg, policy.tokenizer)  # RL pool, held-out split
result = dl.train(cfg, policy=policy, data=data, resume=False)  # DoPR
print(f"held-out accuracy {result.base_accuracy:.3f} -> "
      f"{result.final_accuracy:.3f} after {result.counter.cost} rollouts")
scores = dl.evaluate(policy.model, policy.tokenizer, data.test,
                     dl.get_reward(cfg.reward), k=4)  # greedy and pass@4
print(scores)
fig = dl.plot_runs({"dopr": result})
dl.save_figure(fig, "run", cfg.out_dir)  # runs/api/run.png
