"""The ``churn`` subcommands, one module per command group; ``churn.cli`` registers them.

``churn.cli`` is imported first so that importing a command module on its own finds the shared
options and helpers it uses already defined.
"""

import churn.cli  # noqa: F401
