class _Platform:
    def is_cpu(self) -> bool:
        return False


current_platform = _Platform()
