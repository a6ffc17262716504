"""The model core shared by training, the HTTP service and the jobs: scores, reasons, offers,
the model artifact. Imports ``features`` only."""
