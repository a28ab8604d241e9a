"""The operator endpoints' bearer token check.

503 when the API has no usable token configured (reads keep working), 401 without a token, 403 with
a wrong one. The comparison takes the same time whatever the token's content.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flb_api.core.config import ApiSettings

bearer = HTTPBearer(
    auto_error=False, description="The operator token (environment variable api.operator_token_env)"
)


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(given.encode(), expected.encode())


def require_operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """Admit only callers that present the configured operator token."""
    settings: ApiSettings = request.app.state.settings
    secret = settings.operator_token
    if secret.value is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"operator endpoints are disabled: {secret.problem}",
        )
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing operator token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not tokens_match(credentials.credentials, secret.value):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong operator token")


OperatorDep = Depends(require_operator)
