def cleanup_dist_env_and_memory(shutdown_ray: bool = False) -> None:
    from vllm import CALLS

    CALLS.append(("cleanup_dist_env_and_memory", {}))
