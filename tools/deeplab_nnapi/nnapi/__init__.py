"""The NNAPI model: reading .tflite files, the delegate's rules as data, partitioning, device profiles."""
