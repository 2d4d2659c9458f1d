"""In-memory implementations of the ports, each checked against its DynamoDB store in tests/contract."""
