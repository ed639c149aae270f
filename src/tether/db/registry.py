"""Every model module, imported so that the metadata Alembic compares is complete."""

from tether.accounts import models as accounts_models
from tether.api_keys import models as api_keys_models
from tether.audit import models as audit_models
from tether.catalog import models as catalog_models
from tether.db.base import Base
from tether.installations import models as installations_models
from tether.tenants import models as tenants_models
from tether.users import models as users_models

metadata = Base.metadata

__all__ = [
    "accounts_models",
    "api_keys_models",
    "audit_models",
    "catalog_models",
    "installations_models",
    "metadata",
    "tenants_models",
    "users_models",
]
