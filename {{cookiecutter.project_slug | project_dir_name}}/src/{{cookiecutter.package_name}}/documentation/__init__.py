"""What the project tells people: the model card, its governance answers, the docs site's pages."""
