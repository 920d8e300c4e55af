"""Export: the variant table, checkpoints, conversion to uint8 TFLite, verification, the pipeline."""
