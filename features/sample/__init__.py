"""The sample CRM generator (``churn data generate``)."""

from features.sample.generate import SampleSpec, generate
from features.sample.write import write_partitioned, write_sample

__all__ = ["SampleSpec", "generate", "write_partitioned", "write_sample"]
