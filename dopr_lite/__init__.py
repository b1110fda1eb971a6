"""dopr_lite: Dynamic One-Shot Policy Refinement for RLVR, small and honest.

The pipeline, left to right (a module imports only those to its left):
config -> task/tiny -> data, policy -> rollout -> rewards -> grpo ->
select -> evaluate -> train -> plots -> cli.
"""

from dopr_lite.config import ConfigError, DoprConfig

__version__ = "0.1.0"
__all__ = ["ConfigError", "DoprConfig", "__version__"]
