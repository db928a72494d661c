"""The server-rendered UI for people (DESIGN.md §8): sign-in now, the pages of issue 9 next."""
