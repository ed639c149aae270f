"""Every model module, imported so that the metadata Alembic compares is complete."""

from tether.accounts import models as accounts_models
from tether.api_keys import models as api_keys_models
from tether.db.base import Base
from tether.users import models as users_models

metadata = Base.metadata

__all__ = ["accounts_models", "api_keys_models", "metadata", "users_models"]
