"""The sample CRM generator (``churn data generate``)."""

from features.sample.generate import SampleSpec, generate
from features.sample.write import parts_by_default, write_partitioned, write_sample

__all__ = ["SampleSpec", "generate", "parts_by_default", "write_partitioned", "write_sample"]
