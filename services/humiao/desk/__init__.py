"""The alert desk: the gRPC API staff use to find, work and close alerts."""
