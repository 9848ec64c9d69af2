"""Data preparation: Telegram chat exports -> training CSV.

The command is ``python -m finetuning.prepare`` (command.py). The stages, in
order: reader.py streams the exports, records.py reduces messages to records
(in a helper process with 2+ CPUs), cleaning.py and names.py anonymise their
texts, samples.py builds the rows and finetuning/training_csv.py writes them.
"""
