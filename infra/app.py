"""The wxhub CDK app: the two stacks of the environment named by ``-c env=dev|prod``.

    cdk deploy Wxhub-dev-registry -c env=dev
    cdk deploy Wxhub-dev -c env=dev -c imageTag=<digest> -c certificateArn=arn:aws:acm:...

``<digest>`` is the image's ``sha256:...`` (what CI deploys), or its tag: the full git sha.

The stacks are environment-agnostic (account and region come from the credentials at deploy
time), so synthesis needs no AWS access and no lookups: `python app.py` works offline.
"""

from __future__ import annotations

import aws_cdk as cdk

from wxhub_infra.registry_stack import RegistryStack
from wxhub_infra.settings import CONTEXT_FIELDS, settings_from_context
from wxhub_infra.wxhub_stack import WxhubStack


def build_app(app: cdk.App) -> cdk.App:
    """Add the registry and main stacks of the context's environment to ``app``."""
    context = {key: app.node.try_get_context(key) for key in ("env", *CONTEXT_FIELDS)}
    settings = settings_from_context(context)
    # Where deletion protection is on, a stray `cdk destroy` is refused before it starts.
    protected = settings.deletion_protection
    RegistryStack(
        app,
        settings.registry_stack_name,
        settings=settings,
        description=f"wxhub {settings.name}: the image repository",
        termination_protection=protected,
    )
    WxhubStack(
        app,
        settings.main_stack_name,
        settings=settings,
        description=f"wxhub {settings.name}: network, database, API service, job, monitoring",
        termination_protection=protected,
    )
    for key, value in (("Project", "wxhub"), ("Environment", settings.name)):
        cdk.Tags.of(app).add(key, value)
    return app


if __name__ == "__main__":
    build_app(cdk.App()).synth()
