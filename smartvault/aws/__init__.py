"""The one boto boundary: only this package imports boto3 or botocore."""
