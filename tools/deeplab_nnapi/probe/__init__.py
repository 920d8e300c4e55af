"""The real NNAPI delegate as judge: build TFLite's StatefulNnApiDelegate from a TensorFlow or LiteRT tree on
the host (:mod:`.build`, :mod:`.sources`, :mod:`.toolchain`) and run it over a stub NNAPI (:mod:`.run`)."""
