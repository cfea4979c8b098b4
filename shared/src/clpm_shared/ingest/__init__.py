"""Getting a plant's own data in: tag maps that tie source tags to CLPM loops."""
