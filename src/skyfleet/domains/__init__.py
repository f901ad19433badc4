"""Domain nouns: one folder each, with models, schemas and a service over an explicit session."""
