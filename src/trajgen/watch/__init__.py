"""What a person watching a run sees: PROGRESS.txt and progress.json, the terminal bar and plain
lines, PROGRESS.html and its mirror. It is handed numbers and reads nothing of the run itself."""
