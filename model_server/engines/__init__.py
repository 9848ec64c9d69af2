"""The two ways of running the model (transformers, CTranslate2) behind one interface."""
