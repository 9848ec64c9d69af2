"""The dialogue format shared by data preparation, training and serving."""
