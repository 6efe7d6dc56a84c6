"""The REST API: a Flask application factory, one blueprint per resource under routes/."""
