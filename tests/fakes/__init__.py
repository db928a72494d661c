"""Small real servers the tests run on 127.0.0.1 in place of the delivery providers."""
