"""The real backend: a plan executed on Ray with vLLM rollouts and FSDP2 trainers.

``run.execute`` (``plan execute``) is the entry point; ``backend.RayBackend`` runs the
controller's calls on worker groups; ``stages.StageRunner`` is what each call does (the RL
algorithm); ``metrics`` and ``checkpoint`` are the run's files. Imports torch, ray and
vllm only when a run starts.
"""
