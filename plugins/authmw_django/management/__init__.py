"""Django management commands of authmw."""
