//! Workflow unit tests.
