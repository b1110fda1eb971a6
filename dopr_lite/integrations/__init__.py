"""Adapters that run dopr_lite's selection rules inside other trainers.

``dopr_lite.integrations.trl``: TRL's ``GRPOTrainer`` (``pip install
dopr_lite[trl]``), for runs that outgrow one GPU.
"""
