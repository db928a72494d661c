"""The customer's closeout portal: a completed job and its work receipt, opened by its token."""
