"""A REST server speaking TF Serving's API over SavedModel base paths, and its client.

This package serves any SavedModel and does not import tfposenc.
"""
