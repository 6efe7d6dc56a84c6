"""wxhub's AWS infrastructure: one construct per logical unit, composed by two stacks per env."""
