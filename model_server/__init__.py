"""model_server"""
