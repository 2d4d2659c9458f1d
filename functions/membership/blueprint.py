from shared.web.api import Api

bp = Api(__name__)
