"""Tasks, comments, labels and watchers: the work tenant users do every day."""
