from typing import Any


def TokensPrompt(**kwargs: Any) -> dict[str, Any]:  # noqa: N802 - vLLM's TypedDict is called like a class
    if set(kwargs) - {"prompt_token_ids"}:
        raise TypeError(f"unexpected TokensPrompt keys {sorted(kwargs)}")
    return dict(kwargs)
