DESCRIPTIONS: dict = {}


def cases():
    return []
