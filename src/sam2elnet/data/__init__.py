"""sam2elnet.data"""
