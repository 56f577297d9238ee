from leadml.cli import app

app(prog_name="leadml")
