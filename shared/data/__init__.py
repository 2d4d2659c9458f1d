"""Data access: the only package that imports pynamodb or botocore. PynamoDB items never leave it."""
