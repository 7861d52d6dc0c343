"""What users look at: the HTML report and its page, figures, number formats, the terminal
headline and summary, Perfetto export, and the commands that produce them. Reads analysis
results; nothing below imports it."""
