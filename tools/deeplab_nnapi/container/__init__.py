"""Container: driving the Docker build through the docker SDK."""
