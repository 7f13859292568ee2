"""sam2elnet.model"""
