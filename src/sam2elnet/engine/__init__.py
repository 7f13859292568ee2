"""sam2elnet.engine"""
