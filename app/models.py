"""Every table model, imported so the metadata (Alembic, tests) knows them all."""

from app.auth import models as auth_models  # noqa: F401
from app.cer import models as cer_models  # noqa: F401
from app.core import models as core_models  # noqa: F401
from app.core.db import metadata  # noqa: F401
from app.experts import models as expert_models  # noqa: F401
from app.mall import models as mall_models  # noqa: F401
from app.methodologies import models as methodology_models  # noqa: F401
from app.organizations import models as organization_models  # noqa: F401
from app.points import models as points_models  # noqa: F401
from app.reviews import models as review_models  # noqa: F401
from app.scenes import models as scene_models  # noqa: F401
from app.users import models as user_models  # noqa: F401
from app.web import models as web_models  # noqa: F401
from app.webhooks import models as webhook_models  # noqa: F401
