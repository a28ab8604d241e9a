"""The API's routers, one module per resource."""

from fastapi import APIRouter

from flb_api.routes import clients, contract, dashboard, leaderboard, models, operator, rounds, system

api_router = APIRouter()
for module in (contract, rounds, clients, leaderboard, models, system, operator, dashboard):
    api_router.include_router(module.router)

__all__ = ["api_router"]
