"""Tests of the boto boundary, against moto and botocore's Stubber."""
