def mount(*args, **kwargs):
    """Mounting Google Drive does nothing while grading."""
    return None


def flush_and_unmount(*args, **kwargs):
    return None
