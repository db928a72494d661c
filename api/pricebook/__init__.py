"""The price book (issue 11 item 1): items, fixed prices, CSV import and export."""
