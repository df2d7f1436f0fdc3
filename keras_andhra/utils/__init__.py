"""Small helpers every group shares: argument checks and head lookup."""
