"""Batch scoring (local and on Apache Spark), the job runner, monitoring and its report."""
