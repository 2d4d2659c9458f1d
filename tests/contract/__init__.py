"""One test class per port, run against the in-memory fake and the DynamoDB store on moto."""
